local st = obj.status
if st ~= nil then
  if st.rotation ~= nil and st.rotation.phase ~= nil and st.rotation.phase ~= "Idle" and st.rotation.phase ~= "Completed" then
    if hs.status == "Healthy" then
      hs.status = "Progressing"
    end
    hs.message = "Root rotation " .. st.rotation.phase .. ". " .. hs.message
  end
  if st.readyClusters ~= nil and st.readyClusters ~= "" then
    hs.message = "Clusters ready " .. st.readyClusters .. ". " .. hs.message
  end
end
return hs
